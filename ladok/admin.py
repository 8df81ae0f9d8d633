from django.contrib import admin

from ladok.models import LadokModule


@admin.register(LadokModule)
class LadokModuleAdmin(admin.ModelAdmin):
    list_display = ["round", "course_code", "module_code"]
