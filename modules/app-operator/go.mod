module github.com/wre-dev/wre/modules/app-operator

go 1.26.0

require github.com/wre-dev/wre/guest-sdk v0.0.0

replace github.com/wre-dev/wre/guest-sdk => ../../guest-sdk
