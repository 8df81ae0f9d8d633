from django.urls import path

from review import views

app_name = "review"

urlpatterns = [
    path("rounds/<int:round_id>/similarity/", views.similarity, name="similarity"),
    path("rounds/<int:round_id>/similarity/<slug:part_slug>/<int:first>-<int:second>/", views.similarity_pair,
         name="similarity_pair"),
    path("rounds/<int:round_id>/regrades/", views.regrade_queue, name="regrades"),
    path("rounds/<int:round_id>/regrades/<int:request_id>/answer/", views.regrade_answer, name="regrade_answer"),
    path("runs/<int:run_id>/regrade/", views.regrade_ask, name="regrade_ask"),
]
