"""Recompute end-user keys now that look-alike letters of other scripts inside a Latin word read as Latin.

The normaliser used to transliterate a Greek "Η" in "Ηikvision" phonetically ("iikvision"); it now reads it
as the Latin "H" it imitates, so a key made from such a name changes. Only names with non-ASCII letters can
change. Checklist uploads are recomputed from their screening's end-user, as 0705 filled them in. A
grievance's key is recomputed from the names it could have been made from (the name typed at triage, kept
since 0706, then the key's own words, the grievance's subject, the end-users of the transactions linked to
it): the first whose old key is the stored key gives the new one. A key made from any other name stays as
it was.
"""

import sqlalchemy as sa
from alembic import op

from hrdd.parties.normalize import Normaliser
from hrdd.workspace.util import end_user_key

revision = "0707_homoglyph_end_user_keys"
down_revision = "0706_grievance_texts"
branch_labels = None
depends_on = None

_grievances = sa.table("grievances", sa.column("id"), sa.column("end_user_key"), sa.column("subject_name"),
                       sa.column("end_user_name"))
_links = sa.table("grievance_links", sa.column("grievance_id"), sa.column("transaction_id"))
_uploads = sa.table("checklist_uploads", sa.column("id"), sa.column("new_screening_id"), sa.column("end_user_key"))
_screenings = sa.table("screenings", sa.column("id"), sa.column("transaction_id"), sa.column("request", sa.JSON))


def upgrade():
    _recompute(Normaliser.from_file(fold_homoglyphs=False), Normaliser.from_file())


def downgrade():
    _recompute(Normaliser.from_file(), Normaliser.from_file(fold_homoglyphs=False))


def _recompute(old: Normaliser, new: Normaliser) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_uploads.c.id, _uploads.c.end_user_key, _screenings.c.request)
                        .join(_screenings, _screenings.c.id == _uploads.c.new_screening_id)).all()
    for upload_id, key, request in rows:
        name, country = _end_user(request)
        if name.isascii():
            continue
        fresh = end_user_key(name, country, new)[:600]
        if fresh != key:
            conn.execute(sa.update(_uploads).where(_uploads.c.id == upload_id).values(end_user_key=fresh))
    grievances = conn.execute(sa.select(_grievances.c.id, _grievances.c.end_user_key, _grievances.c.subject_name,
                                        _grievances.c.end_user_name)
                              .where(_grievances.c.end_user_key.is_not(None))).all()
    for grievance_id, key, subject, typed in grievances:
        ident, _, country = key.rpartition("|")
        linked = conn.execute(sa.select(_screenings.c.request)
                              .join(_links, _links.c.transaction_id == _screenings.c.transaction_id)
                              .where(_links.c.grievance_id == grievance_id)).scalars().all()
        for name in (typed or "", ident, subject or "", *(_end_user(request)[0] for request in linked)):
            if name.isascii() or end_user_key(name, country, old) != key:
                continue
            fresh = end_user_key(name, country, new)
            if fresh != key:
                conn.execute(sa.update(_grievances).where(_grievances.c.id == grievance_id)
                             .values(end_user_key=fresh))
            break


def _end_user(request) -> tuple[str, str | None]:
    end_user = (request or {}).get("end_user") or {}
    return str(end_user.get("name") or ""), end_user.get("country")
