-- ordo--0.1.sql - SQL objects of the ordo extension (schema ordo).
--
-- ordo.capture() is the row trigger that records every write to a user table
-- in the transaction's write set; the event trigger attaches it to tables
-- created later, and the block at the end attaches it to tables that exist
-- now. See docs/extension.md.

\echo Use "CREATE EXTENSION ordo" to load this file. \quit

CREATE FUNCTION ordo.version() RETURNS text
  LANGUAGE c STRICT IMMUTABLE AS 'MODULE_PATHNAME', 'ordo_version';

CREATE FUNCTION ordo.status(OUT writes integer, OUT rows integer, OUT bytes bigint,
                            OUT last_tau_commit bigint)
  LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'ordo_status';
COMMENT ON FUNCTION ordo.status() IS
  'Size of the current transaction''s write set, and the tau of this session''s last ordo commit';

CREATE FUNCTION ordo.capture() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'ordo_capture';
COMMENT ON FUNCTION ordo.capture() IS
  'AFTER ... FOR EACH ROW trigger: adds the written row to the transaction''s write set';

-- Captures rows already in a table created in this transaction (CREATE TABLE AS).
CREATE FUNCTION ordo.capture_existing(regclass) RETURNS bigint
  LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'ordo_capture_existing';

-- True for the tables ordo captures: ordinary or partitioned, permanent,
-- outside system schemas and ordo, and not a partition (partitions get the
-- trigger by cloning from their parent).
CREATE FUNCTION ordo.is_captured(rel regclass) RETURNS boolean
  LANGUAGE sql STABLE
  SET search_path = pg_catalog, pg_temp
  AS $$
    SELECT c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND NOT c.relispartition
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'ordo')
       AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = rel
  $$;

-- Attaches the capture trigger to one table if ordo captures it and it has none.
CREATE FUNCTION ordo.attach_capture(rel regclass) RETURNS boolean
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
  AS $$
BEGIN
  IF NOT coalesce(ordo.is_captured(rel), false)
     OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'zzz_ordo_capture')
  THEN
    RETURN false;
  END IF;
  EXECUTE format('CREATE TRIGGER zzz_ordo_capture AFTER INSERT OR UPDATE OR DELETE ON %s '
                 'FOR EACH ROW EXECUTE FUNCTION ordo.capture()', rel);
  RETURN true;
END
$$;

-- Attaches the trigger to every captured table without one that the current
-- user owns (a table detached from a partitioned parent loses its cloned trigger).
CREATE FUNCTION ordo.attach_missing() RETURNS integer
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
  AS $$
DECLARE
  rel regclass;
  attached integer := 0;
BEGIN
  FOR rel IN
    SELECT c.oid::regclass FROM pg_class c
    WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND NOT c.relispartition
      AND pg_has_role(c.relowner, 'USAGE')
      AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                      WHERE t.tgrelid = c.oid AND t.tgname = 'zzz_ordo_capture')
  LOOP
    IF ordo.attach_capture(rel) THEN
      attached := attached + 1;
    END IF;
  END LOOP;
  RETURN attached;
END
$$;

CREATE FUNCTION ordo.on_ddl_command_end() RETURNS event_trigger
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
  AS $$
DECLARE
  cmd record;
BEGIN
  FOR cmd IN
    SELECT DISTINCT d.objid, d.command_tag
    FROM pg_event_trigger_ddl_commands() d
    WHERE d.classid = 'pg_class'::regclass AND d.object_type = 'table'
      AND d.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
  LOOP
    IF ordo.attach_capture(cmd.objid::regclass)
       AND cmd.command_tag IN ('CREATE TABLE AS', 'SELECT INTO') THEN
      PERFORM ordo.capture_existing(cmd.objid::regclass);
    END IF;
  END LOOP;
  IF tg_tag = 'ALTER TABLE' THEN
    PERFORM ordo.attach_missing();
  END IF;
END
$$;

CREATE EVENT TRIGGER ordo_capture_new_tables ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE')
  EXECUTE FUNCTION ordo.on_ddl_command_end();
-- ALWAYS: it fires under session_replication_role = replica too, so a table
-- the applier creates (running another QP's DDL) gets the capture trigger.
-- The capture trigger itself keeps the default (ORIGIN): it does not fire in
-- the applier, whose writes come from the journal and are not sent again.
ALTER EVENT TRIGGER ordo_capture_new_tables ENABLE ALWAYS;

-- Tables that exist before the extension.
SELECT ordo.attach_missing();

GRANT USAGE ON SCHEMA ordo TO PUBLIC;
-- Attaching capture changes what the cluster replicates: superusers only. The
-- event trigger attaches it to every new table, whoever creates it, so it
-- runs as the extension's owner, with a pinned search path.
REVOKE EXECUTE ON FUNCTION ordo.attach_capture(regclass), ordo.attach_missing() FROM PUBLIC;
ALTER FUNCTION ordo.on_ddl_command_end() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
-- ordo.capture_existing stays executable by PUBLIC: the event trigger runs as the
-- table's creator, and the function refuses tables not created in the current
-- transaction, so it cannot replay rows that already exist elsewhere.
