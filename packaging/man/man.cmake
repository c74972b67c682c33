# packaging/man/man.cmake - man pages generated from what the binaries and
# docs already say, so they cannot drift: mxfleet(1) and mxfleet-agent(8) by
# help2man from `--help`/`--version` (mxfleet's with every subcommand's
# --help, through help-all), mxfleet.json(5) from docs/config.md by md2man.py.
# Off by default (needs help2man); debian/rules turns it on.
include(GNUInstallDirs)
find_program(MX_HELP2MAN help2man REQUIRED)
find_program(MX_MAN_PYTHON3 python3 REQUIRED)
set(mx_man ${PROJECT_BINARY_DIR}/man)
set(mx_mansrc ${PROJECT_SOURCE_DIR}/packaging/man)
file(MAKE_DIRECTORY ${mx_man})
add_custom_command(OUTPUT ${mx_man}/mxfleet.1
  COMMAND ${CMAKE_COMMAND} -E env MXFLEET_BIN=$<TARGET_FILE:mxfleet>
          ${MX_HELP2MAN} --no-info --section=1 --name "drive a fleet of machines from Matrix"
          --include ${mx_mansrc}/mxfleet.h2m --output ${mx_man}/mxfleet.1 ${mx_mansrc}/help-all
  DEPENDS mxfleet ${mx_mansrc}/help-all ${mx_mansrc}/mxfleet.h2m VERBATIM)
add_custom_command(OUTPUT ${mx_man}/mxfleet-agent.8
  COMMAND ${MX_HELP2MAN} --no-info --section=8 --name "mxfleet device agent, reached over WireGuard"
          --include ${mx_mansrc}/mxfleet-agent.h2m --output ${mx_man}/mxfleet-agent.8
          $<TARGET_FILE:mxfleet-agent>
  DEPENDS mxfleet-agent ${mx_mansrc}/mxfleet-agent.h2m VERBATIM)
add_custom_command(OUTPUT ${mx_man}/mxfleet.json.5
  COMMAND ${MX_MAN_PYTHON3} ${mx_mansrc}/md2man.py --name mxfleet.json --section 5
          --version ${PROJECT_VERSION} ${PROJECT_SOURCE_DIR}/docs/config.md ${mx_man}/mxfleet.json.5
  DEPENDS ${mx_mansrc}/md2man.py ${PROJECT_SOURCE_DIR}/docs/config.md VERBATIM)
add_custom_target(manpages ALL DEPENDS ${mx_man}/mxfleet.1 ${mx_man}/mxfleet-agent.8 ${mx_man}/mxfleet.json.5)
install(FILES ${mx_man}/mxfleet.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${mx_man}/mxfleet.json.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${mx_man}/mxfleet-agent.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
