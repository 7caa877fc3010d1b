# Sourced by benchmarks: pg_ticks prints the CPU ticks (user + system, CLK_TCK per second)
# the PostgreSQL of $TALLY_STATE_DIR has used so far: its live processes, and the exited
# children the postmaster has reaped.
PG_MAIN=$(head -n 1 "$TALLY_STATE_DIR/postgres/data/postmaster.pid")
pg_ticks() {
  # A stat line: pid (name) state ppid ...; after the name (which may hold spaces: cut it off):
  # 1 state, 2 ppid, ... 12 utime, 13 stime, 14 cutime, 15 cstime. (cat skips the processes
  # that exit meanwhile.)
  { cat /proc/[0-9]*/stat 2> /dev/null || true; } | awk -v main="$PG_MAIN" '{ pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
      if (pid == main) total += f[12] + f[13] + f[14] + f[15]; else if (f[2] == main) total += f[12] + f[13] }
    END { print total + 0 }'
}
