"""A single-file Django app for tests/integration/frameworks.sh: corral runs
it with --wsgi django_app:application --pythonpath tests/apps.

Routes: /dj/json (JSON), /dj/form (POST form fields, CSRF exempt),
/dj/counter (a session counter in a signed cookie), /dj/go (302 to
/dj/json), /dj/boom (raises); anything else is Django's 404."""

import logging
import sys

import django
from django.conf import settings


class WsgiErrorsHandler(logging.Handler):
    """Writes a record to its request's wsgi.errors (corral's error log),
    to stderr when it has no request."""

    def emit(self, record):
        try:
            req = getattr(record, "request", None)
            stream = getattr(req, "META", {}).get("wsgi.errors", sys.stderr)
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001
            self.handleError(record)


settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="corral-test-secret-key-not-for-production",
    INSTALLED_APPS=["django.contrib.sessions"],
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    DATABASES={},
    USE_TZ=True,
    # Django logs a request's exception through "django.request", which
    # with DEBUG=False goes nowhere by default: send it to wsgi.errors.
    LOGGING={
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"wsgi_errors": {"()": WsgiErrorsHandler}},
        "loggers": {"django.request": {"handlers": ["wsgi_errors"], "level": "ERROR"}},
    },
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.shortcuts import redirect  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def json_view(request):
    return JsonResponse({"framework": "django", "method": request.method,
                         "q": request.GET.get("q", "")})


@csrf_exempt
def form_view(request):
    if request.method != "POST":
        return HttpResponse("POST only", status=405)
    p = request.POST
    return HttpResponse("name=%s;colour=%s;n=%d" % (p.get("name", ""), p.get("colour", ""),
                                                   len(p)), content_type="text/plain")


def counter_view(request):
    request.session["n"] = request.session.get("n", 0) + 1
    return HttpResponse("count=%d" % request.session["n"], content_type="text/plain")


def go_view(request):
    return redirect("/dj/json")


class DjangoTestError(Exception):
    pass


def boom_view(request):
    raise DjangoTestError("raised on purpose by the Django /dj/boom view")


urlpatterns = [
    path("dj/json", json_view),
    path("dj/form", form_view),
    path("dj/counter", counter_view),
    path("dj/go", go_view),
    path("dj/boom", boom_view),
]

application = get_wsgi_application()
