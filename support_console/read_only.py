"""The console's read-only admin: what it shows is never added, edited or deleted there."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence is never added, edited or deleted through the console."""

    # "Show counts" would run an uncapped COUNT per filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
