"""The peer's URLs: only the products list (and its N+1 variant)."""

from django.urls import path

from bench.peer.views import ProductList, ProductListNoPrefetch

urlpatterns = [
    path("peer/products/", ProductList.as_view()),
    path("peer/products-noprefetch/", ProductListNoPrefetch.as_view()),
]
