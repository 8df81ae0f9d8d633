from django.contrib.auth import views as auth_views
from django.urls import include, path

from tests.integrations.oidc_site import views

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("control/<str:what>", views.control),
    path("", include("oidc_provider.urls", namespace="oidc_provider")),
]
