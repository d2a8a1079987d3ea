from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.shortcuts import redirect, render

from search.querylang import QueryError, parse, to_text


@login_not_required
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


def home(request):
    return redirect("search")


def search_page(request):
    """The search page; results, histogram and context load from the JSON API (search/api.py).

    The query is in the URL, so the URL is the permalink; it is normalised to canonical text.
    """
    query = request.GET.get("q", "")
    error = None
    if query:
        try:
            canonical = to_text(parse(query))
        except QueryError as e:
            error = {"message": e.message, "position": e.position}
        else:
            if canonical != query:
                return redirect(f"{request.path}?q={_quote(canonical)}")
    saved = request.user.saved_searches.all()
    return render(request, "search/search.html", {"query": query, "error": error, "saved": saved})


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
