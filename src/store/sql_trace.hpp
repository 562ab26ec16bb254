#pragma once
// SQUIRREL_SQL_TRACE=<file>: every statement the process ran, with how often
// and how many SQLite VM steps in all, appended to <file> at exit as
// "<uses>\t<vm steps>\t<sql>" lines. The query-plan guard and the growth test
// (tests/unit/query_plan_test.cpp) read it from the real binary, so every
// statement any command runs is checked without a list kept by hand.
namespace sq::store {

// Installs the tracer when the variable is set; a no-op otherwise.
void install_sql_trace_from_env();

}  // namespace sq::store
