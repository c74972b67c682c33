# packaging/systemd/units.cmake - writes the bot's two units from
# mxfleet.service (cmake -P script; install.cmake runs it at install time,
# tests/packaging/test_unit_sandbox.py runs it on its own):
#   mxfleet.service   ExecStart/ExecStartPre naming BIN instead of
#                     /usr/local/bin/mxfleet
#   mxfleet@.service  the template for a fleet sharded across processes
#                     (docs/scaling.md): instance NAME reads
#                     /etc/mxfleet/NAME.json and keeps its state in
#                     /var/lib/mxfleet/NAME; everything else, the sandbox
#                     included, is mxfleet.service's, so the two cannot drift.
# Usage: cmake -DSRC=mxfleet.service -DBIN=/usr/bin/mxfleet -DDEST=DIR -P units.cmake
foreach(v SRC BIN DEST)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "units.cmake: expected -D${v}=..., got nothing")
  endif()
endforeach()
file(READ "${SRC}" unit)
string(REPLACE "/usr/local/bin/mxfleet" "${BIN}" unit "${unit}")
message(STATUS "Installing: ${DEST}/mxfleet.service")
file(WRITE "${DEST}/mxfleet.service" "${unit}")

# Each replaced line must exist: a renamed setting fails here, not in a
# template that quietly shares the single instance's config or state.
set(template "${unit}")
foreach(pair
    "Description=mxfleet - drive a fleet of machines from Matrix|Description=mxfleet - drive a fleet of machines from Matrix (shard %i)"
    "--config /etc/mxfleet/mxfleet.json\n|--config /etc/mxfleet/%i.json\n"
    "StateDirectory=mxfleet\n|StateDirectory=mxfleet/%i\n"
    "ReadWritePaths=/var/lib/mxfleet\n|ReadWritePaths=/var/lib/mxfleet/%i\n")
  string(REPLACE "|" ";" pair "${pair}")
  list(GET pair 0 from)
  list(GET pair 1 to)
  string(FIND "${template}" "${from}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "units.cmake: ${SRC}: expected a line '${from}' to make the template from")
  endif()
  string(REPLACE "${from}" "${to}" template "${template}")
endforeach()
string(CONCAT head "# mxfleet@.service - one shard of a fleet run as several processes\n"
         "# (docs/scaling.md): instance NAME reads /etc/mxfleet/NAME.json, whose\n"
         "# data_dir must be /var/lib/mxfleet/NAME, and whose bot.http_listen (if\n"
         "# set) must differ from the other shards'. Enable with\n"
         "#   systemctl enable --now mxfleet@NAME\n"
         "# Written from mxfleet.service at install time; that unit's notes follow.\n#\n")
message(STATUS "Installing: ${DEST}/mxfleet@.service")
file(WRITE "${DEST}/mxfleet@.service" "${head}${template}")
