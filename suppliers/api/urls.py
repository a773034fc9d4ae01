from django.urls import path

from suppliers.api import views

urlpatterns = [
    path("suppliers/", views.SupplierListApi.as_view(), name="supplier-list"),
    path("suppliers/<uuid:pk>/", views.SupplierDetailApi.as_view(), name="supplier-detail"),
    path("products/", views.ProductListApi.as_view(), name="product-list"),
    path("products/<uuid:pk>/", views.ProductDetailApi.as_view(), name="product-detail"),
]
