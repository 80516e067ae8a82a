"""Keep credentials out of logs and error messages.

Credentials reach a stage only from its environment (the Kubernetes Secret
``day-ahead-secrets``, Airflow connections): MLflow reads
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` or ``MLFLOW_TRACKING_TOKEN``
itself, so no URI the pipeline prints needs to carry a password, and the settings
refuse one that does (:func:`has_password`). :func:`redact` is the backstop for
text from elsewhere (a library's exception, a URI a user typed): it masks the
password of ``scheme://{user}:{password}@host`` and the value of credential-like
query parameters (``?securityToken=...``). :class:`RedactingFilter` applies it to
every log record a stage's handlers write (``tasks.cli.setup_logging``).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

MASK = "***"

# scheme://{user}:{password}@ -> scheme://{user}:***@ (the user name stays: it names the account).
_USERINFO_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*):(?P<password>[^\s/@]+)@")
# ?token=... &api_key=... &password=... -> the value masked.
_SECRET_QUERY = re.compile(
    r"(?P<head>[?&;](?:[\w.\-]*(?:token|password|passwd|secret|signature|api[_\-]?key|access[_\-]?key)"
    r"[\w.\-]*)=)(?P<value>[^&\s#\"']+)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with URI passwords and credential-like query values replaced by ``***``."""
    text = _USERINFO_PASSWORD.sub(rf"\g<head>:{MASK}@", text)
    return _SECRET_QUERY.sub(rf"\g<head>{MASK}", text)


def has_password(uri: str) -> bool:
    """Whether ``uri`` carries a password in its user-info part (``scheme://{user}:{password}@host``)."""
    try:
        return urlsplit(uri.strip()).password is not None
    except ValueError:  # e.g. an invalid port: not a URI we can read; the masking still applies
        return _USERINFO_PASSWORD.search(uri) is not None


class RedactingFilter(logging.Filter):
    """A handler filter that writes each record's message with :func:`redact` applied."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
