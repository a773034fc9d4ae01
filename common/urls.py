# Operational endpoints other than health (e.g. /metrics) are added here.
urlpatterns: list = []
