from django.urls import path

from examination import views

app_name = "exam"

urlpatterns = [
    path("rounds/<int:round_id>/", views.dashboard, name="dashboard"),
    path("rounds/<int:round_id>/me/", views.my_results, name="my_results"),
    path("rounds/<int:round_id>/regrade/", views.regrade, name="regrade"),
    path("rounds/<int:round_id>/students/<int:user_id>/", views.student_overview, name="student"),
    path("rounds/<int:round_id>/students/<int:user_id>/decide/", views.decide, name="decide"),
    path("rounds/<int:round_id>/students/<int:user_id>/components/<slug:key>/", views.save_component,
         name="save_component"),
    path("rounds/<int:round_id>/students/<int:user_id>/orals/", views.open_session, name="open_session"),
    path("rounds/<int:round_id>/groups/", views.groups, name="groups"),
    path("rounds/<int:round_id>/groups/new/", views.group_create, name="group_create"),
    path("rounds/<int:round_id>/groups/join/", views.group_join, name="group_join"),
    path("rounds/<int:round_id>/groups/<int:group_id>/members/", views.group_add_member, name="group_add_member"),
    path("rounds/<int:round_id>/groups/<int:group_id>/members/<int:user_id>/remove/", views.group_remove_member,
         name="group_remove_member"),
    path("rounds/<int:round_id>/accommodations/", views.accommodations, name="accommodations"),
    path("rounds/<int:round_id>/accommodations/<int:accommodation_id>/revoke/", views.accommodation_revoke,
         name="accommodation_revoke"),
    path("rounds/<int:round_id>/reexaminations/", views.reexamination, name="reexamination"),
    path("rounds/<int:round_id>/settings/", views.round_settings, name="round_settings"),
    path("rounds/<int:round_id>/export/ladok.csv", views.export_ladok, name="export_ladok"),
    path("rounds/<int:round_id>/export/results.csv", views.export_results, name="export_results"),
    path("rounds/<int:round_id>/audit/", views.audit_log, name="audit"),
    path("sessions/<int:session_id>/", views.session_detail, name="session"),
    path("sessions/<int:session_id>/answers/<int:answer_id>/", views.save_answer, name="save_answer"),
    path("sessions/<int:session_id>/parts/<int:part_oral_id>/", views.save_part_oral, name="save_part_oral"),
    path("sessions/<int:session_id>/questions/", views.add_question, name="add_question"),
    path("token/", views.csrf_token, name="csrf_token"),
]
