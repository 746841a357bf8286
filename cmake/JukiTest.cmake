# juki_add_test(NAME SOURCES src... [LIBS lib...] [LABELS label...])
# One cmocka executable per module, registered with CTest under its tier label.
function(juki_add_test name)
	cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
	if(NOT T_LABELS)
		set(T_LABELS unit)
	endif()
	add_executable(${name} ${T_SOURCES})
	target_link_libraries(${name} PRIVATE juki PkgConfig::CMOCKA ${T_LIBS})
	add_test(NAME ${name} COMMAND ${name})
	set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT 120
		ENVIRONMENT "JUKI_TEST_DATA=${PROJECT_SOURCE_DIR}/tests/data;JUKI_SOURCE_DIR=${PROJECT_SOURCE_DIR};JUKI_BUILD_DIR=${PROJECT_BINARY_DIR}")
endfunction()

# juki_add_pytest(NAME FILE [LABELS label...] [TIMEOUT seconds])
# An integration case: a Python script that starts the real binaries.
function(juki_add_pytest name file)
	cmake_parse_arguments(T "" "TIMEOUT" "LABELS" ${ARGN})
	if(NOT T_LABELS)
		set(T_LABELS integration)
	endif()
	if(NOT T_TIMEOUT)
		set(T_TIMEOUT 300)
	endif()
	add_test(NAME ${name} COMMAND python3 ${file})
	set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
		ENVIRONMENT "JUKI_BUILD_DIR=${PROJECT_BINARY_DIR};JUKI_SOURCE_DIR=${PROJECT_SOURCE_DIR};PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/integration;PYTHONDONTWRITEBYTECODE=1")
endfunction()
