-- silver.lineitem: order lines, typed (TPC-H types), strings trimmed (empty is NULL), one
-- row per primary key (l_orderkey, l_linenumber): the most recently ingested version wins.
-- A change feed: _op is I (insert; every row of the first load), U (update) or D (delete).
-- Incremental (pipeline.yaml): a run reads only the bronze rows ingested since the last
-- one and merges them on the key: keys whose latest version is a delete are removed from
-- the table, the others inserted or updated.
-- Bronze holds the types inferred from the CSV (BIGINT keys, DOUBLE prices, DATE dates,
-- VARCHAR text); the casts pin the TPC-H types (exact DECIMAL money, INTEGER keys)
-- whatever a batch inferred (docs/pipelines-spec.md, "Bronze types are inferred").
SELECT
    CAST(l_orderkey AS BIGINT) AS l_orderkey,
    CAST(l_partkey AS INTEGER) AS l_partkey,
    CAST(l_suppkey AS INTEGER) AS l_suppkey,
    CAST(l_linenumber AS INTEGER) AS l_linenumber,
    CAST(l_quantity AS DECIMAL(15,2)) AS l_quantity,
    CAST(l_extendedprice AS DECIMAL(15,2)) AS l_extendedprice,
    CAST(l_discount AS DECIMAL(15,2)) AS l_discount,
    CAST(l_tax AS DECIMAL(15,2)) AS l_tax,
    NULLIF(TRIM(l_returnflag), '') AS l_returnflag,
    NULLIF(TRIM(l_linestatus), '') AS l_linestatus,
    CAST(l_shipdate AS DATE) AS l_shipdate,
    CAST(l_commitdate AS DATE) AS l_commitdate,
    CAST(l_receiptdate AS DATE) AS l_receiptdate,
    NULLIF(TRIM(l_shipinstruct), '') AS l_shipinstruct,
    NULLIF(TRIM(l_shipmode), '') AS l_shipmode,
    NULLIF(TRIM(l_comment), '') AS l_comment,
    COALESCE(_op, 'I') AS _op,
    _batch_id,
    _ingested_at
FROM (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY l_orderkey, l_linenumber
            ORDER BY _ingested_at DESC, _batch_id DESC, _source_file DESC
        ) AS _version
    FROM bronze.lineitem
) AS latest
WHERE _version = 1
