"""The REST API (django-ninja, under /api/v1/) and the personal access tokens it accepts.

Every rule the API applies has its home elsewhere: uploads go through `courseware.uploads.submit`, the
deadlines and standing through `examination.deadlines`, who sees what through the web views' access
helpers and `Submission.visible_to`. This app adds only what is the API's own: tokens, schemas, routes.
"""
