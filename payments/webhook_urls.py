# POST /webhooks/stripe/ is added here by the payments work.
urlpatterns: list = []
