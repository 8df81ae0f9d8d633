from django.urls import path
from lti_tool.views import jwks

from lti import launch, views

app_name = "lti"

urlpatterns = [
    path("jwks/", jwks, name="jwks"),
    path("init/<uuid:registration_uuid>/", launch.LoginInitView.as_view(), name="init"),
    path("launch/", launch.LaunchView.as_view(), name="launch"),
    path("enter/<str:ticket>/", launch.enter, name="enter"),
    path("rounds/<int:round_id>/", views.canvas, name="canvas"),
    path("rounds/<int:round_id>/links/<int:link_id>/sync/", views.sync, name="sync"),
    path("rounds/<int:round_id>/retry/", views.retry, name="retry"),
]
