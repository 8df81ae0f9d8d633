from django.urls import include, path

from identity import views

urlpatterns = [
    path("sso/", include("mozilla_django_oidc.urls")),
    path("rounds/<int:round_id>/roster/", views.roster_import, name="roster_import"),
]
