from django.urls import path

from notifications import views

urlpatterns = [path("", views.preferences, name="notification_settings")]
