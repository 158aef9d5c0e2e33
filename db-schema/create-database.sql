-- Creates TFB's role and database on any PostgreSQL server, then loads the tables.
-- Run it with psql as a superuser, from any database of the server:
--   psql -v ON_ERROR_STOP=1 -h HOST -U postgres -f db-schema/create-database.sql
-- The server must preload pg_stat_statements (see postgresql.conf beside this file).
-- Like TFB's database image, benchmarkdbuser is a superuser: the verifier reads every
-- statement's text from pg_stat_statements through it.

SELECT 'CREATE ROLE benchmarkdbuser WITH LOGIN SUPERUSER PASSWORD ''benchmarkdbpass'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'benchmarkdbuser')
\gexec

SELECT 'CREATE DATABASE hello_world OWNER benchmarkdbuser ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'hello_world')
\gexec

\connect hello_world
\ir create-postgres.sql
