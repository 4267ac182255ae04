# cb_link_check(NAME <test> TARGET <static lib> LAYER <name> FORBID <regex>
#               [FORBID_DEFINED <regex>]
#               [CATCHES <other static lib> EXPECT <regex on the failure>])
# Adds ctest <test>: the archive of TARGET may not need a symbol matching
# FORBID (nor define one matching FORBID_DEFINED), checked with nm by
# cmake/link_check.cmake. With CATCHES it also adds <test>_catches, the
# negative control: the same check run on a library that does reach there
# must fail with a message matching EXPECT, proof that the check can fail.
function(cb_link_check)
  cmake_parse_arguments(LC "" "NAME;TARGET;LAYER;FORBID;FORBID_DEFINED;CATCHES;EXPECT" "" ${ARGN})
  set(script ${PROJECT_SOURCE_DIR}/cmake/link_check.cmake)
  set(args -DNM=${CMAKE_NM} -DLAYER=${LC_LAYER} "-DFORBID=${LC_FORBID}")
  if(LC_FORBID_DEFINED)
    list(APPEND args "-DFORBID_DEFINED=${LC_FORBID_DEFINED}")
  endif()
  add_test(NAME ${LC_NAME}
    COMMAND ${CMAKE_COMMAND} ${args} -DLIB=$<TARGET_FILE:${LC_TARGET}> -P ${script})
  set_tests_properties(${LC_NAME} PROPERTIES LABELS layers TIMEOUT 60)
  if(LC_CATCHES)
    add_test(NAME ${LC_NAME}_catches
      COMMAND ${CMAKE_COMMAND} ${args} -DLIB=$<TARGET_FILE:${LC_CATCHES}> -P ${script})
    set_tests_properties(${LC_NAME}_catches PROPERTIES LABELS layers TIMEOUT 60
      PASS_REGULAR_EXPRESSION "${LC_EXPECT}")
  endif()
endfunction()
