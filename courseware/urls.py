from django.contrib import admin
from django.urls import include, path

from api.main import api
from api.views import profile, token_create, token_revoke
from courseware import views
from identity import views as identity_views
from languages.views import switch_language

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", identity_views.LoginView.as_view(), name="login"),
    path("logout/", identity_views.logout, name="logout"),
    path("rounds/<int:round_id>/", views.round_detail, name="round"),
    path("rounds/<int:round_id>/staff/runs/", views.staff_runs, name="staff_runs"),
    path("assignments/<int:assignment_id>/", views.assignment_detail, name="assignment"),
    path("assignments/<int:assignment_id>/handout.zip", views.handout_zip, name="handout"),
    path("assignments/<int:assignment_id>/submit/", views.submit, name="submit"),
    path("submissions/<int:submission_id>/", views.submission_detail, name="submission"),
    path("submissions/<int:submission_id>/status/", views.submission_status, name="submission_status"),
    path("submissions/<int:submission_id>/archive.zip", views.archive_download, name="archive"),
    path("runs/<int:run_id>/artifacts/<slug:name>.png", views.run_artifact, name="run_artifact"),
    path("staff/runs/<int:run_id>/", views.staff_run, name="staff_run"),
    path("exam/", include("examination.urls")),
    path("admin/", admin.site.urls),
    # issue 14: the REST API, the profile page (access tokens, language) and the language switch
    path("api/v1/", api.urls),
    path("profile/", profile, name="profile"),
    path("profile/tokens/", token_create, name="token_create"),
    path("profile/tokens/<int:token_id>/revoke/", token_revoke, name="token_revoke"),
    path("i18n/setlang/", switch_language, name="set_language"),
    # issue 14: single sign-on, Canvas (LTI 1.3), roster import, e-mail settings (identity/, lti/, notifications/)
    path("", include("identity.urls")),
    path("lti/", include("lti.urls")),
    path("notifications/", include("notifications.urls")),
]

# ---- issue 13: Prometheus metrics (staff, or a configured address) and archives for worker hosts ----------
from courseware import ops_views  # noqa: E402 - kept in this block, apart from the lines above

urlpatterns += [
    path("metrics", ops_views.metrics, name="metrics"),
    path("internal/runs/<int:run_id>/archive.zip", ops_views.run_archive, name="run_archive"),
]

# ---- issue 17: similarity across the cohort and regrade requests (review/) ---------------------------------
urlpatterns += [path("review/", include("review.urls"))]
