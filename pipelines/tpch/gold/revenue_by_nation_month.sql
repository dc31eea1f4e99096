-- gold.revenue_by_nation_month: net revenue (extended price less discount) of the order
-- lines per customer nation and order month, with order and line counts.
SELECT
    r.r_name AS region,
    n.n_name AS nation,
    CAST(DATE_TRUNC('month', o.o_orderdate) AS DATE) AS order_month,
    COUNT(DISTINCT o.o_orderkey) AS orders,
    COUNT(*) AS line_items,
    SUM(l.l_quantity) AS quantity,
    SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue
FROM silver.lineitem AS l
JOIN silver.orders AS o ON l.l_orderkey = o.o_orderkey
JOIN silver.customer AS c ON o.o_custkey = c.c_custkey
JOIN silver.nation AS n ON c.c_nationkey = n.n_nationkey
JOIN silver.region AS r ON n.n_regionkey = r.r_regionkey
GROUP BY r.r_name, n.n_name, CAST(DATE_TRUNC('month', o.o_orderdate) AS DATE)
ORDER BY region, nation, order_month
