"""A products list written the way most Django code would write it.

`ModelSerializer` + `ListAPIView` + `LimitOffsetPagination`, categories as a
`PrimaryKeyRelatedField(many=True)`. The main view prefetches the categories (two queries per
page plus DRF's COUNT(*)): a fair, competent peer. `ProductListNoPrefetch` is the same view as
it is often first written, with one query per product for its categories (measured on the first
page only, for context).
"""

from rest_framework import generics, serializers
from rest_framework.pagination import LimitOffsetPagination

from shop.models import Product


class ProductSerializer(serializers.ModelSerializer):
    categories = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "name",
            "description",
            "price",
            "list_price",
            "image",
            "url",
            "brand",
            "created_at",
            "index",
            "attributes",
            "categories",
        ]


class ProductList(generics.ListAPIView):
    queryset = Product.objects.prefetch_related("categories").order_by("id")
    serializer_class = ProductSerializer
    pagination_class = LimitOffsetPagination


class ProductListNoPrefetch(ProductList):
    queryset = Product.objects.order_by("id")
