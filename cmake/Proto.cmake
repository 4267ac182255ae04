# cb_protobuf_generate(OUT_SRCS OUT_HDRS file.proto ...)
# Runs protoc-c at build time; generated code lands in the build tree only.
function(cb_protobuf_generate out_srcs out_hdrs)
  set(srcs)
  set(hdrs)
  foreach(proto ${ARGN})
    get_filename_component(abs ${proto} ABSOLUTE)
    get_filename_component(name ${proto} NAME_WE)
    set(c "${CMAKE_CURRENT_BINARY_DIR}/${name}.pb-c.c")
    set(h "${CMAKE_CURRENT_BINARY_DIR}/${name}.pb-c.h")
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${PROTOC_C} --proto_path=${CMAKE_CURRENT_SOURCE_DIR}
              --c_out=${CMAKE_CURRENT_BINARY_DIR} ${abs}
      DEPENDS ${abs} ${ARGN}
      COMMENT "protoc-c ${name}.proto"
      VERBATIM)
    list(APPEND srcs ${c})
    list(APPEND hdrs ${h})
  endforeach()
  set(${out_srcs} ${srcs} PARENT_SCOPE)
  set(${out_hdrs} ${hdrs} PARENT_SCOPE)
endfunction()

# A library whose folder has no sources yet still configures: parallel work
# adds files to globbed folders one at a time.
function(cb_placeholder_source out)
  set(f "${CMAKE_CURRENT_BINARY_DIR}/placeholder.c")
  if(NOT EXISTS ${f})
    file(WRITE ${f} "typedef int cb_placeholder_unit;\n")
  endif()
  set(${out} ${f} PARENT_SCOPE)
endfunction()
