from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard import actions, badges, environments, login, schedules, suites, trends, views, webhooks
from runs.api import api

urlpatterns = [
    path("", views.overview, name="dashboard-overview"),
    path("runs/", views.runs_list, name="runs-list"),
    path("runs/<int:run_id>/", views.run_detail, name="runs-detail"),
    path("runs/<int:run_id>/results/", views.run_results, name="runs-results"),
    path("runs/<int:run_id>/progress/", views.run_progress, name="runs-progress"),
    path("runs/<int:run_id>/rerun/", actions.rerun, name="runs-rerun"),
    path("runs/<int:run_id>/export/<str:fmt>/", views.run_export, name="runs-export"),
    path("runs/<int:run_id>/notes/", actions.add_note, name="runs-add-note"),
    path("notes/<int:note_id>/", actions.edit_note, name="runs-edit-note"),
    path("run-now/", actions.run_now, name="dashboard-run-now"),
    path("compare/", views.compare, name="dashboard-compare"),
    path("cases/<int:test_case_id>/", views.test_case_history, name="dashboard-test-case"),
    path("trends/", trends.trends, name="dashboard-trends"),
    path("business/", trends.business, name="dashboard-business"),
    path("tokens/", views.api_tokens, name="dashboard-tokens"),
    path("tokens/new/", actions.create_api_token, name="dashboard-token-create"),
    path("tokens/<int:token_id>/revoke/", actions.revoke_api_token, name="dashboard-token-revoke"),
    path("alerts/", webhooks.webhooks, name="dashboard-webhooks"),
    path("alerts/<int:webhook_id>/", webhooks.webhook_detail, name="dashboard-webhook"),
    path("alerts/<int:webhook_id>/<slug:action>/", webhooks.webhook_action, name="dashboard-webhook-action"),
    path("suites/", suites.suites_page, name="dashboard-suites"),
    path("suites/reload/", suites.suites_reload, name="dashboard-suites-reload"),
    path("suites/<slug:name>/", suites.suite_page, name="dashboard-suite"),
    path("suites/<slug:name>/tags/", suites.suite_tags, name="dashboard-suite-tags"),
    path("suites/<slug:name>/versions/<int:number>/", suites.suite_page, name="dashboard-suite-version"),
    path("environments/", environments.environments_page, name="dashboard-environments"),
    path("environments/new/", environments.environment_edit, name="dashboard-environment-new"),
    path("environments/<slug:name>/", environments.environment_edit, name="dashboard-environment"),
    path("schedules/", schedules.schedules_page, name="dashboard-schedules"),
    path("schedules/<int:schedule_id>/delete/", schedules.schedule_delete, name="dashboard-schedule-delete"),
    path("api/v1/", api.urls),
    path("badge/<str:key>.svg", badges.badge_svg, name="badge-svg"),
    path("badges/<int:badge_id>/rotate/", badges.badge_rotate, name="dashboard-badge-rotate"),
    path("badges/<slug:environment>/<slug:suite>/", badges.badge_settings, name="dashboard-badge"),
    path("accounts/login/", login.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
