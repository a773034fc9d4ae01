# The pay endpoint (POST /api/v1/reservations/{id}/pay/) is added here by the payments work.
urlpatterns: list = []
