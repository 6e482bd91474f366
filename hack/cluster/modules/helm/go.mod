module github.com/tideserve/tide/hack/cluster/modules/helm

go 1.26.8
