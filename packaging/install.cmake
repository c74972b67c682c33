# packaging/install.cmake - what `cmake --install` puts beside the binaries
# (bot/ and devices/agent/ install those): the read-only data the bot looks
# up at run time through common/mx_share.c, under share/mxfleet/:
#   templates/<os>.json   manifest templates for `mxfleet device add` (<os>-ssh.json for --via ssh)
#   prompts/device.md     the agent's system prompt template
#   systemd/*.service     the units (mxfleet@.service: one shard of a fleet
#                         run as several processes); mxfleet-agent.service
#                         also goes into every `device add --via wg` bundle
#   examples/             the example config and manifest
# mxfleet.service is written with ExecStart in this install's bin/, so a
# prefix install ships a unit that starts the binary it installed.
include(GNUInstallDirs)
set(MX_SHARE ${CMAKE_INSTALL_DATADIR}/mxfleet)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/tools/templates/ DESTINATION ${MX_SHARE}/templates
        FILES_MATCHING PATTERN "*.json")
install(FILES ${PROJECT_SOURCE_DIR}/prompts/device.md DESTINATION ${MX_SHARE}/prompts)
# never the secrets scripts/run generates next to the example config
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/ DESTINATION ${MX_SHARE}/examples
        PATTERN ".gitignore" EXCLUDE PATTERN "secrets" EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/mxfleet-agent.service DESTINATION ${MX_SHARE}/systemd)
# Written at install time (`cmake --install --prefix P` sets the prefix
# then) by units.cmake: mxfleet.service and the shard template mxfleet@.service.
install(CODE "
  set(SRC \"${PROJECT_SOURCE_DIR}/packaging/systemd/mxfleet.service\")
  set(BIN \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/mxfleet\")
  set(DEST \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${MX_SHARE}/systemd\")
  include(\"${PROJECT_SOURCE_DIR}/packaging/systemd/units.cmake\")
")
