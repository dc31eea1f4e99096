-- gold.q3_shipping_priority: TPC-H Q3, the shipping priority query (clause 2.4.3), with the
-- validation substitution parameters SEGMENT = BUILDING, DATE = 1995-03-15: the ten
-- unshipped orders with the highest revenue. l_orderkey breaks (unlikely) ties so the
-- top ten are deterministic.
SELECT
    l.l_orderkey,
    SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue,
    o.o_orderdate,
    o.o_shippriority
FROM silver.customer AS c
JOIN silver.orders AS o ON c.c_custkey = o.o_custkey
JOIN silver.lineitem AS l ON l.l_orderkey = o.o_orderkey
WHERE c.c_mktsegment = 'BUILDING'
    AND o.o_orderdate < DATE '1995-03-15'
    AND l.l_shipdate > DATE '1995-03-15'
GROUP BY l.l_orderkey, o.o_orderdate, o.o_shippriority
ORDER BY revenue DESC, o.o_orderdate, l.l_orderkey
LIMIT 10
