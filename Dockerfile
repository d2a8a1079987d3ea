# Logsite's image: one image, one process per container (see docker-compose.yml).
# The base is a build argument so that a mirror or a pinned digest can be used without editing this file.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOGSITE_DATA_DIR=/data

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# An unprivileged account; /data holds the secret key and the ingest spool.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin logsite \
    && mkdir -p /data \
    && chown logsite:logsite /data
USER logsite
VOLUME /data
EXPOSE 8000

CMD ["python", "-m", "uvicorn", "logsite.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off"]
