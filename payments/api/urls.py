from django.urls import path

from payments.api import views

urlpatterns = [
    path("reservations/<uuid:reservation_id>/pay/", views.ReservationPayApi.as_view(), name="reservation-pay"),
]
