from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.settings import api_settings

from common.parsers import SafeJSONParser


class TokenObtainApi(ObtainAuthToken):
    """POST username + password → token. DRF's own view switches throttling off; a login
    endpoint is exactly where guessing must be rate-limited (per anonymous IP)."""

    throttle_classes = api_settings.DEFAULT_THROTTLE_CLASSES
    parser_classes = (SafeJSONParser,)
