-- TFB's tables and data, loaded into the hello_world database (create-database.sql runs this).
-- Equal in effect to TFB's toolset/databases/postgres/create-postgres.sql: four tables, because
-- unquoted names fold to lower case (world, fortune) and quoted ones keep theirs ("World",
-- "Fortune"); every randomnumber is uniform in 1..10000; the twelve fortunes byte for byte.

BEGIN;

CREATE TABLE world (
  id integer NOT NULL,
  randomnumber integer NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
);
GRANT ALL PRIVILEGES ON world TO benchmarkdbuser;
INSERT INTO world (id, randomnumber)
SELECT ids.id, least(floor(random() * 10000 + 1), 10000)
FROM generate_series(1, 10000) AS ids(id);

CREATE TABLE fortune (
  id integer NOT NULL,
  message varchar(2048) NOT NULL,
  PRIMARY KEY (id)
);
GRANT ALL PRIVILEGES ON fortune TO benchmarkdbuser;
INSERT INTO fortune (id, message) VALUES
  (1, 'fortune: No such file or directory'),
  (2, 'A computer scientist is someone who fixes things that aren''t broken.'),
  (3, 'After enough decimal places, nobody gives a damn.'),
  (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),
  (5, 'A computer program does what you tell it to do, not what you want it to do.'),
  (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),
  (7, 'Any program that runs right is obsolete.'),
  (8, 'A list is only as strong as its weakest link. — Donald Knuth'),
  (9, 'Feature: A bug with seniority.'),
  (10, 'Computers make very fast, very accurate mistakes.'),
  (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
  (12, 'フレームワークのベンチマーク');

CREATE TABLE "World" (
  id integer NOT NULL,
  randomnumber integer NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
);
GRANT ALL PRIVILEGES ON "World" TO benchmarkdbuser;
INSERT INTO "World" (id, randomnumber)
SELECT ids.id, least(floor(random() * 10000 + 1), 10000)
FROM generate_series(1, 10000) AS ids(id);

CREATE TABLE "Fortune" (
  id integer NOT NULL,
  message varchar(2048) NOT NULL,
  PRIMARY KEY (id)
);
GRANT ALL PRIVILEGES ON "Fortune" TO benchmarkdbuser;
INSERT INTO "Fortune" (id, message) SELECT id, message FROM fortune;

COMMIT;

CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

-- Planner statistics for the freshly loaded tables.
ANALYZE;
