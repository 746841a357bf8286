# Build one man page:
#   cmake -DSCDOC=scdoc -DIN=page.scd -DOUT=page.8 [-DDAEMON=/path/to/daemon] -P build-page.cmake
# With DAEMON, the line "@CONFIG_KEYS@" of the page is replaced by what the daemon prints for
# --help-config=scdoc, so the key list comes from the daemon's own key table.
file(READ "${IN}" page)
if(DAEMON)
	execute_process(COMMAND "${DAEMON}" --help-config=scdoc
		OUTPUT_VARIABLE keys RESULT_VARIABLE rc)
	if(NOT rc EQUAL 0)
		message(FATAL_ERROR "${DAEMON} --help-config=scdoc failed: ${rc}")
	endif()
	string(FIND "${page}" "@CONFIG_KEYS@\n" at)
	if(at EQUAL -1)
		message(FATAL_ERROR "${IN}: no @CONFIG_KEYS@ line")
	endif()
	string(REPLACE "@CONFIG_KEYS@\n" "${keys}" page "${page}")
endif()
set(merged "${OUT}.scd")
file(WRITE "${merged}" "${page}")
execute_process(COMMAND "${SCDOC}" INPUT_FILE "${merged}" OUTPUT_FILE "${OUT}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
	file(REMOVE "${OUT}")
	message(FATAL_ERROR "scdoc failed on ${merged}")
endif()
