from django.urls import path

from fedele.accounts.web import admin, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/two-factor/", views.two_factor_view, name="two_factor"),
    path("logout/", views.logout_view, name="logout"),
    path("language/", views.language_view, name="language"),
    path("profile/", views.profile_view, name="profile"),
    path("users/", views.user_list_view, name="user_list"),
    path("users/new/", admin.user_create_view, name="user_create"),
    path("users/<uuid:public_id>/", admin.user_edit_view, name="user_edit"),
    path("teams/", admin.team_list_view, name="team_list"),
]
