"""search postgres

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

The PostgreSQL search backend's tables (feereg/search/pg_backend.py), in their own schema
`search`: derived state, rebuilt from the registry by `feereg reindex`, kept apart from the
registry's tables (the models' metadata does not describe them, and the schema comparison
of the migrations' test looks at the default schema only).

* search.text — each distinct text once (fee names, service contents, firm names, the
  catalog's types, ports, categories) with its analysed tokens in a tsvector under a GIN
  index: CJK characters, character pairs with their positions, stemmed English words and
  prefixed pinyin, all produced by feereg.search.analysis (the Whoosh backend's analyser).
* search.span — one row per span of time in which an item's published version is in
  force, with the columns that filters, facets and sorting read.
* search.change — the items each write replaced and the firms it named anew, with the
  writing transaction's id, so every process's in-memory columns and firm names follow
  the tables exactly (see pg_store.py).
* search.meta — the build token (absent: never built, search says so) and the change
  log's trimmed horizon.

On SQLite this migration creates nothing: the backend needs PostgreSQL.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SCHEMA search")
    op.execute("CREATE TABLE search.meta (key text PRIMARY KEY, value text NOT NULL)")
    op.execute("""
        CREATE TABLE search.text (
            kind text NOT NULL,
            ref text NOT NULL,
            num bigint,
            body text NOT NULL,
            tokens tsvector NOT NULL,
            verify boolean NOT NULL DEFAULT false,
            PRIMARY KEY (kind, ref)
        )""")
    # No pending list (fastupdate): rows in it are read one by one by every search until a
    # vacuum merges them — after a rebuild, all of them (a 2-character term took 7 ms instead
    # of 1 at 100,000 items, and the planner gave up on the index). A publish rarely adds a text.
    # Firm names are matched in each process's memory (pg_firms.py): only the other texts here.
    op.execute("CREATE INDEX text_tokens_idx ON search.text USING gin (tokens) WITH (fastupdate = off) "
               "WHERE kind <> 'f'")
    # Texts whose positions a tsvector cannot hold (see pg_tokens.py): few or none.
    op.execute("CREATE INDEX text_verify_idx ON search.text USING gin (tokens) WITH (fastupdate = off) "
               "WHERE verify AND kind <> 'f'")
    op.execute("""
        CREATE TABLE search.span (
            item_id integer NOT NULL,
            valid_from date NOT NULL,
            valid_until date,
            version_id integer NOT NULL,
            firm_id integer NOT NULL,
            fee_type text NOT NULL,
            name_key bigint NOT NULL,
            content_key bigint NOT NULL,
            category text NOT NULL,
            currency text NOT NULL,
            pricing_basis text NOT NULL,
            amount_cents bigint NOT NULL,
            cny_cents bigint NOT NULL,
            ports text NOT NULL,
            PRIMARY KEY (item_id, valid_from)
        )""")
    op.execute("CREATE INDEX span_firm_idx ON search.span (firm_id)")
    op.execute("CREATE INDEX span_name_idx ON search.span (name_key)")
    op.execute("CREATE INDEX span_content_idx ON search.span (content_key)")
    op.execute("""
        CREATE TABLE search.change (
            seq bigserial PRIMARY KEY,
            item_id integer,
            firm_id integer,
            xid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
            CHECK ((item_id IS NULL) <> (firm_id IS NULL))
        )""")
    op.execute("CREATE INDEX change_xid_idx ON search.change (xid)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP SCHEMA IF EXISTS search CASCADE")
