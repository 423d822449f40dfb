# tests/model.cmake - the weight-format and model-family tables (src/model/): their consistency with the
# loaders, the engines' repacked layout and the roofline, and configs/formats.json (what analysis/ reads)
# equal to the tables, through the library and through `qwenbench formats --json`.
qb_add_c_test(test_model_tables ${QB_TEST_DIR}/model/test_model_tables.c)
target_include_directories(test_model_tables PRIVATE ${QB_TEST_DIR}/io)
add_test(NAME model_tables COMMAND test_model_tables ${CMAKE_SOURCE_DIR})
set_tests_properties(model_tables PROPERTIES TIMEOUT 300)
add_test(NAME model_formats_json
         COMMAND sh -c "\"$1\" formats --json | cmp - \"$2\" && ! \"$1\" formats 2>/dev/null"
                 sh $<TARGET_FILE:qwenbench> ${CMAKE_SOURCE_DIR}/configs/formats.json)
