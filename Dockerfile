# Logsite's image: one image, one process per container (see docker-compose.yml).
# The base is a build argument so that a mirror or a pinned digest can be used without editing this file.
ARG PYTHON_IMAGE=python:3.11-slim
# The write path's C loops (ingest/native) are compiled in the full image, which has gcc and
# the Python headers; the slim image only receives the built module.
ARG PYTHON_BUILD_IMAGE=python:3.11

FROM ${PYTHON_BUILD_IMAGE} AS native
WORKDIR /app
COPY ingest/__init__.py ingest/__init__.py
COPY ingest/native/ ingest/native/
RUN python -m ingest.native.build

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
COPY --from=native /app/ingest/native/_rowcodec*.so ingest/native/
# An unprivileged account; /data holds the secret key and the ingest spool.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin logsite \
    && mkdir -p /data \
    && chown logsite:logsite /data
USER logsite
VOLUME /data
EXPOSE 8000

CMD ["python", "-m", "uvicorn", "logsite.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off"]
