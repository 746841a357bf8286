# Writes OUT, a C file holding the board page's assets as byte arrays and the table
# struct juki_boardweb_asset juki_boardweb_assets[] (libjuki/include/juki/node/boardweb.h).
# ASSETS: a ,-list of "<url path>|<content type>|<file>" (UTF-8 text: the type gets its
# charset).  Run with cmake -P at build time (libjuki/CMakeLists.txt), so that an edit of the
# page rebuilds the binary with it.
set(body "/* Made by cmake/embed.cmake from libjuki/src/node/boardweb/: do not edit. */\n")
string(APPEND body "#include <stddef.h>\n\n#include \"juki/node/boardweb.h\"\n\n")
set(table "")
set(i 0)
string(REPLACE "," ";" ASSETS "${ASSETS}")
foreach(asset IN LISTS ASSETS)
	string(REPLACE "|" ";" parts "${asset}")
	list(GET parts 0 url)
	list(GET parts 1 type)
	list(GET parts 2 file)
	file(READ "${file}" hex HEX)
	string(LENGTH "${hex}" n)
	math(EXPR len "${n} / 2")
	string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
	string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
	string(APPEND body "static const unsigned char asset${i}[] = {\n${bytes}0x00};\n\n")
	string(APPEND table "    {\"${url}\", \"${type}; charset=utf-8\", asset${i}, ${len}},\n")
	math(EXPR i "${i} + 1")
endforeach()
string(APPEND body "const struct juki_boardweb_asset juki_boardweb_assets[] = {\n${table}")
string(APPEND body "    {NULL, NULL, NULL, 0},\n};\n")
file(WRITE "${OUT}" "${body}")
