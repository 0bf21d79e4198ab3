extension KeysetPage where Item: ReplySized {
    /// The page from `rows`, which a store fetched with `limit + 1` (the extra row only says that
    /// there is a next page); `position` is a row's keyset position (its `seq`, or its depth). The
    /// page is cut short where the next item would pass `budget`: then `nextCursor` is the last
    /// kept item's position, so the next page starts at the item that did not fit.
    ///
    /// - Throws: `ReplyBudgetError` when the first item alone does not fit.
    public init<Row>(rows: [Row], limit: Int, budget: ReplyBudget, position: (Row) -> Int64, item: (Row) -> Item) throws {
        var filler = ReplyBudget.Filler(budget)
        var items: [Item] = []
        items.reserveCapacity(min(rows.count, limit))
        var last: Int64?
        for row in rows.prefix(limit) {
            let next = item(row)
            guard try filler.add(next) else {
                self.init(items: items, nextCursor: last.map(PageCursor.encode))
                return
            }
            items.append(next)
            last = position(row)
        }
        self.init(items: items, nextCursor: rows.count > limit ? last.map(PageCursor.encode) : nil)
    }
}
