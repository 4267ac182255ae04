# link_check.cmake: keeps a layer's seam honest by reading its built archive
# with nm (the generalisation of consensus.no_forbidden_symbols).
#   cmake -DNM=<nm> -DLIB=<lib.a> -DLAYER=<name>
#         -DFORBID=<regex on undefined symbols>
#         [-DFORBID_DEFINED=<regex on defined symbols>] -P link_check.cmake
# Fails, naming each symbol, when the archive needs a symbol matching FORBID
# (it reaches above its layer or into a library it may not use) or defines
# one matching FORBID_DEFINED (e.g. a hash of its own). Matching is
# case-sensitive on the bare symbol name.
if(NOT NM OR NOT LIB OR NOT LAYER OR NOT FORBID)
  message(FATAL_ERROR "usage: cmake -DNM= -DLIB= -DLAYER= -DFORBID= [-DFORBID_DEFINED=] -P ${CMAKE_SCRIPT_MODE_FILE}")
endif()
if(NOT EXISTS "${LIB}")
  message(FATAL_ERROR "no such library: ${LIB}")
endif()

function(symbols out)
  execute_process(COMMAND "${NM}" ${ARGN} "${LIB}"
                  OUTPUT_VARIABLE text ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} ${ARGN} ${LIB} failed (${rc}): ${err}")
  endif()
  string(REGEX MATCHALL "[^\n]+" lines "${text}")
  set(names "")
  foreach(line IN LISTS lines)
    if(line MATCHES "^[^ ]+:$")  # object-file headers ("x.c.o:") are not symbols
      continue()
    endif()
    string(REGEX REPLACE "^.* " "" name "${line}")
    list(APPEND names "${name}")
  endforeach()
  set(${out} "${names}" PARENT_SCOPE)
endfunction()

set(bad "")
symbols(undefined -u)
foreach(name IN LISTS undefined)
  if(name MATCHES "${FORBID}")
    list(APPEND bad "needs ${name}")
  endif()
endforeach()
if(FORBID_DEFINED)
  symbols(defined --defined-only)
  foreach(name IN LISTS defined)
    if(name MATCHES "${FORBID_DEFINED}")
      list(APPEND bad "defines ${name}")
    endif()
  endforeach()
endif()

list(LENGTH undefined n_undef)
if(n_undef EQUAL 0)
  message(FATAL_ERROR "${NM} -u listed no symbols in ${LIB}: nothing was checked")
endif()
if(bad)
  list(REMOVE_DUPLICATES bad)
  list(JOIN bad "\n  " text)
  message(FATAL_ERROR "${LIB} reaches outside layer ${LAYER}:\n  ${text}")
endif()
message(STATUS "${LIB}: ${n_undef} undefined symbols, none outside layer ${LAYER}")
