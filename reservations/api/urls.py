from django.urls import path

from reservations.api import views

urlpatterns = [
    path("reservations/", views.ReservationListCreateApi.as_view(), name="reservation-list"),
    path("reservations/<uuid:reservation_id>/", views.ReservationDetailApi.as_view(), name="reservation-detail"),
    path("reservations/<uuid:reservation_id>/events/", views.ReservationEventsApi.as_view(),
         name="reservation-events"),
]
