"""Feed URLs (DESIGN.md, "HTTP contract")."""

urlpatterns: list = []
