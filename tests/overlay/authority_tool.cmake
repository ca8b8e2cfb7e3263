# authority_tool.cmake: drives chorus-authority end to end (run by CTest
# with -DBIN=<tool> -DDIR=<scratch dir>): keygen, refusal to overwrite,
# pubkey, sign a handle and a room certificate, show and verify them against
# the right and a wrong authority.
file(REMOVE_RECURSE ${DIR})
file(MAKE_DIRECTORY ${DIR})

function(run expect_rc out_var)
  execute_process(COMMAND ${BIN} ${ARGN} WORKING_DIRECTORY ${DIR}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL expect_rc)
    message(FATAL_ERROR "chorus-authority ${ARGN}: exit ${rc}, wanted ${expect_rc}\n${out}\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

run(0 auth keygen auth.key)
string(LENGTH "${auth}" n)
if(NOT n EQUAL 43)
  message(FATAL_ERROR "keygen printed '${auth}', not a 43-character key")
endif()
run(2 ignored keygen auth.key)              # never overwrites
run(0 auth2 pubkey auth.key)
if(NOT auth STREQUAL auth2)
  message(FATAL_ERROR "pubkey '${auth2}' differs from keygen '${auth}'")
endif()
run(0 node keygen node.key)
run(0 ignored sign auth.key --name alice --subject ${node} --out alice.cert)
file(SIZE ${DIR}/alice.cert size)
if(NOT size EQUAL 212)
  message(FATAL_ERROR "certificate is ${size} bytes, not 212")
endif()
run(0 shown show alice.cert --authority ${auth})
foreach(want "kind:       handle" "name:       alice" "subject:    ${node}" "status:     valid")
  string(FIND "${shown}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "show lacks '${want}':\n${shown}")
  endif()
endforeach()
run(2 shown show alice.cert --authority ${node})   # another authority
run(0 b64 sign auth.key --name standup --subject ${node} --room --days 2)
file(WRITE ${DIR}/room.txt "${b64}\n")
run(0 shown show room.txt --authority ${auth})
string(FIND "${shown}" "kind:       room" at)
if(at EQUAL -1)
  message(FATAL_ERROR "room certificate not shown as a room:\n${shown}")
endif()
run(1 ignored sign auth.key --name "has space" --subject ${node})
run(1 ignored sign auth.key --name bob --subject not-a-key)
