"""Clinic groups and bureaus: many clinics in one run, each computed alone, then consolidated.

`clinics` reads the group (`[[clinic]]` tables or a folder of sub-folders) into `Clinic`s;
`runner` computes one clinic as a single-clinic run would, serially or as a Dask task
(`cluster`); `partition` splits one large clinic by patient; `summary`, `page` and `workbook`
make the group report; `command` is what the CLI calls.
"""
