import {
  createRow,
  getMemoOptions,
  memo,
  type Row,
  type RowModel,
  type Table
} from '@tanstack/react-table'

/**
 * TanStack's core row model, for flat data that mostly grows: it keeps the Row it made for a data
 * object as long as that object is at the same index, and makes Rows only for new or moved ones.
 * The stock model makes a Row (dozens of closures) for every item on every data change, which for
 * a streaming result was O(all rows) of allocation per batch. Sub-rows are not supported.
 */
export function reusingCoreRowModel<TData extends object>(): (
  table: Table<TData>
) => () => RowModel<TData> {
  return (table) => {
    let made = new WeakMap<TData, Row<TData>>()
    let madeFor: Table<TData>['options']['columns'] | undefined
    return memo(
      () => [table.options.data],
      (data) => {
        // Rows cache their values by column; new column definitions start them afresh.
        if (madeFor !== table.options.columns) {
          made = new WeakMap()
          madeFor = table.options.columns
        }
        const rows: Row<TData>[] = new Array(data.length)
        const rowsById: Record<string, Row<TData>> = {}
        for (let i = 0; i < data.length; i++) {
          const original = data[i]!
          let row = made.get(original)
          const id = table._getRowId(original, i)
          if (!row || row.index !== i || row.id !== id) {
            row = createRow(table, id, original, i, 0)
            made.set(original, row)
          }
          rows[i] = row
          rowsById[id] = row
        }
        return { rows, flatRows: rows, rowsById }
      },
      getMemoOptions(table.options, 'debugTable', 'getRowModel', () => table._autoResetPageIndex())
    )
  }
}
