from django.urls import path

from payments.api import views

urlpatterns = [
    path("reservations/<uuid:reservation_id>/pay/", views.ReservationPayApi.as_view(), name="reservation-pay"),
    path("reservations/<uuid:reservation_id>/cancel/", views.ReservationCancelApi.as_view(),
         name="reservation-cancel"),
]
