"""The SQL of the bench service; the peer apps in bench/apps use these same strings."""

# Each World is read on its own, as TechEmpower's rules require for /queries and /updates.
READ_WORLD = "SELECT id, randomnumber FROM world WHERE id = $1"

READ_FORTUNES = "SELECT id, message FROM fortune"

# One statement for the whole batch; callers pass ids sorted so concurrent batches lock rows in
# the same order and cannot deadlock.
WRITE_WORLDS = (
    "UPDATE world SET randomnumber = v.randomnumber"
    " FROM unnest($1::integer[], $2::integer[]) AS v(id, randomnumber)"
    " WHERE world.id = v.id"
)

WORLD_ROWS = 10_000
MAX_QUERIES = 500
