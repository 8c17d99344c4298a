// The shape of a panel query against manifold's two data sources. Grafana's dashboard schema
// types targets as Record<string, unknown> (each data source plugin owns its query model), so
// these are manifold's own checks on top: the right data source uid per query language, a raw
// SQL query with a known format, a PromQL expression with a legend. scripts/grafana-check
// assigns every target of every panel to `Target`.

export interface SqlTarget {
  refId: string;
  datasource: { type: 'grafana-postgresql-datasource'; uid: 'manifold-pg' };
  editorMode: 'code';
  format: 'time_series' | 'table';
  rawQuery: true;
  rawSql: string;
}

export interface PromTarget {
  refId: string;
  datasource: { type: 'prometheus'; uid: 'manifold-prom' };
  editorMode: 'code';
  expr: string;
  legendFormat: string;
  range: true;
}

export type Target = SqlTarget | PromTarget;
